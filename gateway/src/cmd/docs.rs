//! Documentation generated from the command tree: shell completions and man
//! pages.

use crate::{command, fail, long_version};
use std::path::Path;
use std::process::ExitCode;

/// Shell completions for `shell`, printed.
pub(crate) fn completions(shell: clap_complete::Shell) -> ExitCode {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut command(), "mnp-gateway", &mut buf);
    out!("{}", String::from_utf8_lossy(&buf));
    ExitCode::SUCCESS
}

/// The man page of the CLI, printed; or, with `dir`, it and one page per
/// command (`mnp-gateway-run.1`, …) written there.
pub(crate) fn man_pages(dir: Option<&Path>) -> ExitCode {
    let top = command();
    let render = |cmd: clap::Command| -> Result<Vec<u8>, String> {
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut buf)
            .map_err(|e| e.to_string())?;
        Ok(buf)
    };
    let Some(dir) = dir else {
        return match render(top) {
            Ok(b) => {
                out!("{}", String::from_utf8_lossy(&b));
                ExitCode::SUCCESS
            }
            Err(e) => fail(1, e),
        };
    };
    let mut pages = vec![("mnp-gateway".to_string(), top.clone())];
    for sub in top.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("mnp-gateway-{}", sub.get_name());
        let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
        pages.push((name, sub.clone().name(leaked).version(long_version())));
    }
    if let Err(e) = std::fs::create_dir_all(dir) {
        return fail(1, format!("{}: {e}", dir.display()));
    }
    for (name, cmd) in pages {
        let path = dir.join(format!("{name}.1"));
        if let Err(e) =
            render(cmd).and_then(|b| std::fs::write(&path, b).map_err(|e| e.to_string()))
        {
            return fail(1, format!("{}: {e}", path.display()));
        }
        outln!("{}", path.display());
    }
    ExitCode::SUCCESS
}
