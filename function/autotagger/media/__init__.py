"""Decoding what Cloudinary delivers: images and video frames."""
