//! The Responses translation's tests, one module per direction.

mod answer;
mod request;
mod stream;
