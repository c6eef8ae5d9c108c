//! Control-plane tests (filled in by the control-plane work).
