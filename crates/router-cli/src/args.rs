//! The command line: clap definitions of every subcommand, with an example in each `--help`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const MAIN_HELP: &str = "\
Examples:
  router-cli models --vision
  router-cli explain request.json --seed 7
  OPENROUTER_API_KEY=sk-or-... router-cli chat --stream \"Write a haiku about routers\"
  router-cli completions bash > /etc/bash_completion.d/router-cli

Environment:
  OPENROUTER_API_KEY   key sent upstream by `chat` (never printed)
  OPENROUTER_BASE_URL  upstream API base (default https://openrouter.ai/api/v1)";

const MODELS_HELP: &str = "\
Examples:
  router-cli models                          # live catalog, cache or embedded as a fallback
  router-cli models --vision --tools --min-context 32000
  router-cli models --catalog-file models.json --json | jq '.models[].id'";

const EXPLAIN_HELP: &str = "\
Examples:
  router-cli explain request.json
  echo '{\"model\":\"openrouter/free\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}' \\
    | router-cli explain --seed 7 --json -";

const CHAT_HELP: &str = "\
Examples:
  router-cli chat \"What is the capital of France?\"
  router-cli chat --stream --system \"Answer in French\" \"Tell me a joke\"
  router-cli chat --image photo.jpg \"What is in this picture?\"
  router-cli chat --json-schema person.schema.json \"Invent a person\"
  router-cli chat --model meta-llama/llama-3.3-70b-instruct:free --seed 7 hello

The answer goes to stdout; which model answered, and after how many attempts, to stderr.
Needs OPENROUTER_API_KEY.";

const CATALOG_HELP: &str = "\
Examples:
  router-cli catalog refresh     # fetch each /models and save the disk caches
  router-cli catalog show --json";

const COMPLETIONS_HELP: &str = "\
Examples:
  router-cli completions bash > ~/.local/share/bash-completion/completions/router-cli
  router-cli completions zsh > \"${fpath[1]}/_router-cli\"
  router-cli completions fish > ~/.config/fish/completions/router-cli.fish";

/// See the pool of free OpenRouter models, explain a routing decision, chat from the terminal.
#[derive(Debug, Parser)]
#[command(name = "router-cli", version, after_help = MAIN_HELP)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand understands (beside `--config` and the settings' flags,
/// added by `settings::FLAGS`).
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Disk cache of the catalog [default: catalog.json in the data directory]
    #[arg(long, global = true, value_name = "FILE")]
    pub cache_path: Option<PathBuf>,
    /// Saved router state: cooldowns and quota counts [default: state.json in the data directory, as the server]
    #[arg(long, global = true, value_name = "FILE")]
    pub state_path: Option<PathBuf>,
    /// Log what the adapters do, on stderr
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List the free models that meet the filters
    #[command(after_help = MODELS_HELP)]
    Models(ModelsArgs),
    /// Explain the routing decision for a request body, without sending it
    #[command(after_help = EXPLAIN_HELP)]
    Explain(ExplainArgs),
    /// Send a prompt through the router and print the answer
    #[command(after_help = CHAT_HELP)]
    Chat(ChatArgs),
    /// Refresh or inspect the catalog of models
    #[command(after_help = CATALOG_HELP, subcommand)]
    Catalog(CatalogCommand),
    /// Print a shell completion script
    #[command(after_help = COMPLETIONS_HELP)]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Where the catalog comes from.
#[derive(Debug, Clone, Args)]
pub(crate) struct CatalogSourceArgs {
    /// Read a saved `/models` response (either shape) instead of the live catalog
    #[arg(long, value_name = "FILE")]
    pub catalog_file: Option<PathBuf>,
    /// Do not fetch: use the disk cache, else the embedded catalog
    #[arg(long, conflicts_with = "catalog_file")]
    pub offline: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ModelsArgs {
    /// Only models that accept image input
    #[arg(long)]
    pub vision: bool,
    /// Only models that support tool calling
    #[arg(long)]
    pub tools: bool,
    /// Only models that support structured outputs (json_schema)
    #[arg(long)]
    pub structured: bool,
    /// Only models that support reasoning
    #[arg(long)]
    pub reasoning: bool,
    /// Only models with at least this context length, in tokens
    #[arg(long, value_name = "N")]
    pub min_context: Option<u64>,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub source: CatalogSourceArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ExplainArgs {
    /// The chat-completion request body, or `-` for stdin
    #[arg(value_name = "REQUEST.json|-")]
    pub request: String,
    /// Seed of the random pick [default: random, and printed]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
    /// The body is an Anthropic Messages request (`/v1/messages`, as Claude Code sends
    /// it), translated to chat as the server translates it
    #[arg(long)]
    pub messages: bool,
    #[command(flatten)]
    pub source: CatalogSourceArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ChatArgs {
    /// The prompt (several words are joined with spaces); `-` reads it from stdin
    #[arg(required = true, value_name = "PROMPT")]
    pub prompt: Vec<String>,
    /// A `:free` model id to ask, instead of a random free model
    #[arg(long, value_name = "ID")]
    pub model: Option<String>,
    /// Print the answer token by token as it arrives
    #[arg(long)]
    pub stream: bool,
    /// An image to send with the prompt: a local file (sent as a base64 data URL) or a URL
    #[arg(long, value_name = "PATH_OR_URL")]
    pub image: Vec<String>,
    /// Ask for a JSON answer that follows this JSON schema
    #[arg(long, value_name = "FILE")]
    pub json_schema: Option<PathBuf>,
    /// A system message
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    /// Seed of the random pick, for a reproducible choice of model [default: random]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Upper bound of the answer's length, in tokens
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u64>,
    /// Print the whole response body as JSON (not with --stream)
    #[arg(long, conflicts_with = "stream")]
    pub json: bool,
    #[command(flatten)]
    pub source: CatalogSourceArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CatalogCommand {
    /// Fetch each provider's `/models` and save its disk cache
    #[command(after_help = "Example:\n  router-cli catalog refresh")]
    Refresh {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Show the catalog in use without fetching: source, age, counts
    #[command(after_help = "Example:\n  router-cli catalog show --json")]
    Show {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_subcommand_has_an_example() {
        let mut cmd = Cli::command();
        cmd.build();
        let mut missing = Vec::new();
        for sub in cmd.get_subcommands() {
            if !sub.get_after_help().is_some_and(|h| h.to_string().contains("router-cli")) {
                missing.push(sub.get_name().to_owned());
            }
            for inner in sub.get_subcommands() {
                if !inner.get_after_help().is_some_and(|h| h.to_string().contains("router-cli")) {
                    missing.push(format!("{} {}", sub.get_name(), inner.get_name()));
                }
            }
        }
        // `help` is clap's own.
        missing.retain(|m| !m.contains("help"));
        assert!(missing.is_empty(), "no example in --help of: {missing:?}");
    }
}
