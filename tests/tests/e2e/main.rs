//! End-to-end tests of the router.
