//! PID-1 behaviour tests.
