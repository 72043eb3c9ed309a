//! OpenAI's Responses API (stateless): requests to chat, chat answers and streams back to Responses.
