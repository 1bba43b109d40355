"""The boards wing: board files and sessions (local, SSH), the profiling plan and upload, and the
runtime bundles for boards without internet; the stand-alone on-board code is in `onboard/`."""
