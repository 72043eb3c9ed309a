//! End-to-end tests of the router: one integration-test binary, one module per area.

mod resilience;
