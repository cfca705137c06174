//! Shell completions and man pages, generated from the clap definitions so
//! they never drift from the commands they describe.

use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::cli::Cli;

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(clap::Args)]
pub struct ManpagesArgs {
    /// Directory to write `loader.1` and one `loader-COMMAND.1` per command into.
    dir: PathBuf,
}

/// `loader completions SHELL`: the completion script on stdout.
pub fn completions(args: CompletionsArgs) -> Result<(), String> {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "loader", &mut std::io::stdout());
    Ok(())
}

/// `loader manpages DIR`: `loader.1` plus a page per subcommand.
pub fn manpages(args: ManpagesArgs) -> Result<(), String> {
    std::fs::create_dir_all(&args.dir).map_err(|e| format!("creating {}: {e}", args.dir.display()))?;
    let command = Cli::command();
    write_page(&command, "loader", &args.dir)?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        // The page's title is the full command name, as man(1) looks it up.
        write_page(sub, &format!("loader-{}", sub.get_name()), &args.dir)?;
    }
    Ok(())
}

fn write_page(command: &clap::Command, title: &str, dir: &Path) -> Result<(), String> {
    let path = dir.join(format!("{title}.1"));
    let mut text = Vec::new();
    clap_mangen::Man::new(command.clone())
        .title(title)
        .render(&mut text)
        .map_err(|e| format!("rendering {}: {e}", path.display()))?;
    std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}
