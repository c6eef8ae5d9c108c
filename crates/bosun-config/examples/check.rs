//! `cargo run -p bosun-config --example check -- FILE [ROLES]`: parse a config
//! against the current environment and print the errors, or the warnings, the
//! redacted config and the plan.

use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(file) = args.next() else {
        eprintln!("usage: check FILE [ROLES]");
        std::process::exit(2);
    };
    let env = bosun_config::Env::current();
    match bosun_config::load(&PathBuf::from(file), &env) {
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            std::process::exit(2);
        }
        Ok(config) => {
            for w in &config.warnings {
                eprintln!("warning: {w}");
            }
            print!("{}", config.to_redacted_toml());
            let roles = args.next().unwrap_or_else(|| config.roles_expr(&env));
            match bosun_config::Plan::new(&config, &roles) {
                Ok(plan) => {
                    println!("\n# plan for {:?}: roles {:?}", plan.roles_expr, plan.roles);
                    for u in &plan.units {
                        println!("#   {} ({}) after {:?}", u.name, u.reason, u.deps);
                    }
                    for (n, why) in &plan.inactive {
                        println!("#   inactive {n}: {why}");
                    }
                    println!("# start waves: {:?}", plan.start_waves);
                    println!("# stop waves:  {:?}", plan.stop_waves);
                    println!("# worst-case stop: {:?}", plan.worst_case_stop);
                }
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(2);
                }
            }
        }
    }
}
