//! Anthropic's Messages API: requests to chat, chat answers and streams back to Messages.
