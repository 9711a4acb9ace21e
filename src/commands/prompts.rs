//! `cwm-bench prompts`: the prompt profile (every text the model sees).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(clap::Subcommand, Debug)]
pub enum PromptsCommand {
    /// Write the built-in profile, every field commented, as a file to start a profile from.
    Dump {
        /// Where to write it (default: standard output). An existing file is not overwritten.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a profile: it must parse and use only each field's placeholders.
    Check { file: PathBuf },
}

pub fn run(cmd: PromptsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PromptsCommand::Dump { out: None } => print!("{}", cwm_tools::profile::DEFAULT_PROFILE),
        PromptsCommand::Dump { out: Some(path) } => {
            anyhow::ensure!(
                !path.exists(),
                "{} exists; choose another --out or remove it first",
                path.display()
            );
            cwm_eval::write_atomic(&path, cwm_tools::profile::DEFAULT_PROFILE.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            println!("wrote the default prompt profile to {}", path.display());
        }
        PromptsCommand::Check { file } => {
            cwm_tools::Profile::load(&file)?;
            println!("{}: a valid prompt profile", file.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
