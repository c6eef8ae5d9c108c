//! Backup and restore (placeholder until the snapshot crate lands).
