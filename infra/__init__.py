"""Local tools: the local Cloudinary, the emulators, `make run`, artifact builds, benchmarks."""
