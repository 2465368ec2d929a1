//! Print docs/protocol.md's test vectors, wrapped at 64 hex digits.
fn main() {
    println!("```vectors");
    for (name, hex) in mnp_traffic::vectors::compute() {
        let mut chunks = hex.as_bytes().chunks(64);
        let first = std::str::from_utf8(chunks.next().unwrap_or_default()).unwrap_or_default();
        println!("{name} = {first}");
        for c in chunks {
            println!("    {}", std::str::from_utf8(c).unwrap_or_default());
        }
    }
    println!("```");
}
