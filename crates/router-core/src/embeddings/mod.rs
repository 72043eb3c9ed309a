//! Embeddings: `POST /embeddings` routed by family, so that a client's vectors always
//! come from one vector space.
//!
//! Read in this order: `request` (the body, its forms of `input` and its bounds),
//! `family` (the free embedding models, the families they form, and which family a
//! request's `model` names), `answer` (an answer's vectors counted and their dimension
//! checked against the family's first answer), `batch` (a batch larger than an endpoint
//! takes cut into chunks for one model, and their answers joined). A model's declared
//! `input_type` is added by the body builder ([`ChatRequest::add_input_type`](
//! crate::request::ChatRequest::add_input_type)). The route itself is the router's one
//! loop: [`ChatRequest::embeddings`](crate::request::ChatRequest::embeddings) confines the
//! candidates to one family and sends the body to the `/embeddings` endpoint.

mod answer;
mod batch;
mod family;
mod request;

pub use answer::{AnswerError, Dimensions, EmbeddingsAnswer, VectorCheck, floats_to_base64, read_answer};
pub use batch::{Batch, BatchError, chunks, first_chunk, merge};
pub use family::{Resolved, free_embedding_models, free_families, resolve};
pub use request::{EmbeddingsError, EmbeddingsRequest, Encoding, MAX_EMBEDDING_INPUT_BYTES, MAX_EMBEDDING_INPUTS};
