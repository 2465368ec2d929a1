//! Print docs/protocol.md §8's drop-reason table from the declaration.
use mnp_dataplane::DropReason;
fn main() {
    println!("| code | name | auditable | meaning |");
    println!("|---:|---|:---:|---|");
    for r in DropReason::ALL {
        println!(
            "| {} | `{}` | {} | {} |",
            r.code(),
            r.name(),
            if r.auditable() { "yes" } else { "no" },
            r.help()
        );
    }
}
