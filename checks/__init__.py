"""Post-deploy check: proves who can reach which bucket, and explains every failure."""
