//! shm-lock (in progress).
