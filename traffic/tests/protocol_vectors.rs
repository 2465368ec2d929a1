//! Every test vector in docs/protocol.md is reproduced by the code.

#[test]
fn every_vector_in_the_protocol_document_is_reproduced() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md"))
        .expect("docs/protocol.md");
    let in_doc = mnp_traffic::vectors::parse_doc(&doc);
    let computed = mnp_traffic::vectors::compute();
    assert!(computed.len() >= 15);
    for (name, hex) in &computed {
        let doc_value = in_doc
            .get(*name)
            .unwrap_or_else(|| panic!("vector `{name}` missing from docs/protocol.md"));
        assert_eq!(
            doc_value, hex,
            "vector `{name}` in docs/protocol.md disagrees with the code"
        );
    }
    for name in in_doc.keys() {
        assert!(
            computed.iter().any(|(n, _)| n == name),
            "docs/protocol.md has vector `{name}` that no test checks"
        );
    }
}

#[test]
fn the_forwarded_vector_frames_have_valid_checksums() {
    use mnp_dataplane::wire::checksum;
    let v: std::collections::HashMap<_, _> = mnp_traffic::vectors::compute().into_iter().collect();
    let f4 = hex::decode(&v["frame_udp4_out"]).unwrap();
    assert_eq!(checksum::checksum(&f4[14..34]), 0, "IPv4 header checksum");
    let (src, dst) = (
        f4[26..30].try_into().unwrap(),
        f4[30..34].try_into().unwrap(),
    );
    let mut udp = f4[34..].to_vec();
    let stored = u16::from_be_bytes([udp[6], udp[7]]);
    udp[6..8].copy_from_slice(&[0, 0]);
    assert_eq!(checksum::udp_ipv4(src, dst, &udp), stored);
    let f6 = hex::decode(&v["frame_udp6_out"]).unwrap();
    let (src, dst) = (
        f6[22..38].try_into().unwrap(),
        f6[38..54].try_into().unwrap(),
    );
    let mut udp = f6[54..].to_vec();
    let stored = u16::from_be_bytes([udp[6], udp[7]]);
    udp[6..8].copy_from_slice(&[0, 0]);
    assert_eq!(checksum::udp_ipv6(src, dst, &udp), stored);
}

#[test]
fn every_drop_reason_is_documented_with_its_number() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md"))
        .unwrap();
    for r in mnp_dataplane::DropReason::ALL {
        let row = format!(
            "| {} | `{}` | {} | {} |",
            r.code(),
            r.name(),
            if r.auditable() { "yes" } else { "no" },
            r.help()
        );
        assert!(doc.contains(&row), "docs/protocol.md lacks the row: {row}");
    }
}
