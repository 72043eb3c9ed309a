//! The one reading of a chat-completions answer (JSON) and of its stream (SSE chunks), shared by every dialect.
