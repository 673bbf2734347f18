"""autotagger: classify Cloudinary uploads with VGG16 and write the labels back as tags."""
