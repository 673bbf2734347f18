"""A module per outside system: Cloudinary, Firestore (`store`), Pub/Sub, Cloud Storage (`gcs`)."""
