//! `mxguard scan` behaviour a user relies on, beyond signature parity
//! (which `parity_clamscan.rs` covers): errors are never "OK", exit codes.

use std::process::Command;

const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

fn mxguard(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mxguard"))
        .args(args)
        .output()
        .expect("run mxguard");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exit_codes_and_error_lines() {
    let dir = tempfile::tempdir().unwrap();
    let eicar = dir.path().join("eicar.com");
    let clean = dir.path().join("clean.txt");
    std::fs::write(&eicar, EICAR).unwrap();
    std::fs::write(&clean, "nothing to see here\n").unwrap();
    let (e, c) = (eicar.to_str().unwrap(), clean.to_str().unwrap());

    let (code, out, _) = mxguard(&["scan", "--no-cache", c]);
    assert_eq!((code, out.trim()), (0, format!("{c}: OK").as_str()));

    let (code, out, _) = mxguard(&["scan", "--no-cache", e, c]);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!("{e}: Win.Test.EICAR_HDB-1 FOUND")),
        "{out}"
    );

    // A missing input is an error line and exit 2, never OK.
    let missing = dir.path().join("missing.bin");
    let m = missing.to_str().unwrap();
    let (code, out, _) = mxguard(&["scan", "--no-cache", c, m]);
    assert_eq!(code, 2);
    assert!(
        out.contains(&format!("{m}: No such file or directory ERROR")),
        "{out}"
    );
    assert!(!out.contains(&format!("{m}: OK")));

    // A mistyped --db stops the scan instead of scanning with fewer signatures.
    let (code, out, err) = mxguard(&["scan", "--no-cache", "--db", "/nonexistent/local.ndb", e]);
    assert_eq!(code, 2);
    assert!(
        out.is_empty() && err.contains("/nonexistent/local.ndb"),
        "{out} {err}"
    );

    // Directories recurse; JSON has one object per file.
    let (code, out, _) = mxguard(&["scan", "--no-cache", "--json", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    let objs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objs.len(), 2);
    let inf = objs.iter().find(|o| o["path"] == e).unwrap();
    assert_eq!(inf["verdict"], "infected");
    assert_eq!(inf["threats"][0]["name"], "Win.Test.EICAR_HDB-1");
    assert_eq!(inf["size"], 68);
}

/// `mxguard spam check --policy`: the rules fire (here through leetspeak and
/// case folding), their points decide, and the actions are listed; a bad
/// policy file is refused with the key path of each mistake.
#[test]
fn spam_check_with_a_policy_file() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[[rules]]\nname = \"LOTTERY\"\ngroup = \"spam\"\nscore = 6.0\n\
         match = { body = { keywords = [\"lottery\", \"claim your prize\"], min = 2 } }\n",
    )
    .unwrap();
    let spam = dir.path().join("spam.eml");
    std::fs::write(
        &spam,
        "Subject: you won\r\nTo: a@example.com\r\n\r\nThe l0ttery says: CLAIM YOUR PRIZE now.\r\n",
    )
    .unwrap();
    let ham = dir.path().join("ham.eml");
    std::fs::write(&ham, "Subject: notes\r\n\r\nThe lottery of life.\r\n").unwrap();
    let model = dir.path().join("none.model");
    let (p, m, s, h) = (
        policy.to_str().unwrap(),
        model.to_str().unwrap(),
        spam.to_str().unwrap(),
        ham.to_str().unwrap(),
    );
    let (code, out, err) = mxguard(&["spam", "check", "--json", "--policy", p, "--model", m, s, h]);
    assert_eq!(code, 0, "{err}");
    let v: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v[0]["label"], "spam", "{out}");
    assert_eq!(v[0]["rules"][0]["name"], "LOTTERY");
    assert_eq!(v[0]["score"], 6.0);
    assert!(
        v[0]["actions"][0].as_str().unwrap().starts_with("tag"),
        "{out}"
    );
    assert_eq!(
        v[1]["label"], "ham",
        "one keyword is not enough (min = 2): {out}"
    );

    std::fs::write(
        &policy,
        "[[rules]]\nname = \"BAD\"\nscore = 1.0\nmatch = { body = { regex = [\"(\"] } }\n",
    )
    .unwrap();
    let (code, _, err) = mxguard(&["spam", "check", "--policy", p, "--model", m, s]);
    assert_ne!(code, 0);
    assert!(err.contains("rules[0].match.body.regex"), "{err}");
}
