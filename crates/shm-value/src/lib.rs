//! shm-value (in progress).
