//! `ccare acdb generate`.

use std::time::Instant;

use adapters::acdb::generate::{generate as generate_acdb, GenerateOptions};

use crate::cli::GenerateArgs;
use crate::progress::Activity;

pub fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    let options = GenerateOptions {
        customers: args.customers,
        years: args.years,
        seed: args.seed,
    };
    let started = Instant::now();
    let activity = Activity::spinner("generating");
    let summary = generate_acdb(&args.out, &options, &mut |p| activity.message(p));
    activity.finish();
    let summary = summary?;
    println!("{}", summary);
    println!(
        "wrote {} in {:.1}s; connect with ACDB_DSN='Driver=SQLite3;Database={}'",
        args.out.display(),
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}
