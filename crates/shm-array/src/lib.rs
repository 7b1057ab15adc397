//! shm-array (in progress).
