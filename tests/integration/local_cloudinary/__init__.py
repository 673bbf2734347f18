"""The local Cloudinary, exercised through the real `cloudinary` SDK."""
