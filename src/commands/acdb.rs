//! `ccare acdb generate`.

use std::io::IsTerminal;
use std::time::Instant;

use adapters::acdb::generate::{generate as generate_acdb, GenerateOptions};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::GenerateArgs;

pub fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    let options = GenerateOptions {
        customers: args.customers,
        years: args.years,
        seed: args.seed,
    };
    let started = Instant::now();
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = crate::progress::bars()
            .add(ProgressBar::new_spinner())
            .with_style(
                ProgressStyle::with_template("{spinner} {msg}").expect("the template is valid"),
            );
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        bar
    });
    let summary = generate_acdb(&args.out, &options, &mut |p| {
        if let Some(bar) = &bar {
            bar.set_message(p.to_string());
        }
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    println!("{}", summary);
    println!(
        "wrote {} in {:.1}s; connect with ACDB_DSN='Driver=SQLite3;Database={}'",
        args.out.display(),
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}
