"""Integration tests: the emulators, the local Cloudinary, VGG16 artifacts, in-process apps."""
