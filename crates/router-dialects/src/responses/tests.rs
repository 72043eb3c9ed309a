//! The Responses translation's tests, one module per direction.

mod request;
