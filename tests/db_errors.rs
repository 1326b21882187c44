//! What the store commands say about a database they cannot use, and that a
//! command that only reads never leaves a database file behind.

mod cli_support;
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use cli_support::{Db, failure, run, stdout};

const BIN: &str = env!("CARGO_BIN_EXE_smsbridge");

/// The commands that only read.
const READ_ONLY: [&[&str]; 6] = [
    &["users", "list", "--json"],
    &["users", "limits", "sip:alice@example.com"],
    &["contacts", "list", "--json"],
    &["queue", "list", "--json"],
    &["inbox", "list", "--json"],
    &["cdr", "export", "--json"],
];

/// Commands that change rows a new, empty database cannot have.
const CHANGES: [&[&str]; 7] = [
    &["users", "remove", "sip:alice@example.com"],
    &["users", "limits", "sip:alice@example.com", "--rate", "1"],
    &[
        "contacts",
        "add",
        "--user",
        "sip:alice@example.com",
        "--msisdn",
        "+491701234567",
    ],
    &[
        "contacts",
        "block",
        "--user",
        "sip:alice@example.com",
        "--msisdn",
        "+491701234567",
    ],
    &["queue", "fail", "1"],
    &["queue", "requeue", "--modem", "262011234567890"],
    &["purge", "--older-than", "90d"],
];

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Runs each command in an empty directory: "no database", exit 1, and the
/// directory still empty.
fn assert_no_database_created(commands: &[&[&str]]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for args in commands {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(dir.path()).args(*args);
        let (code, err) = failure(&run(cmd, ""));
        assert_eq!(
            (code, err.as_str()),
            (1, "smsbridge: no database at ./smsbridge.db\n"),
            "{args:?}"
        );
        assert_eq!(entries(dir.path()), Vec::<String>::new(), "{args:?}");
    }
    dir
}

#[test]
fn read_only_commands_in_an_empty_directory_create_nothing() {
    assert_no_database_created(&READ_ONLY);
}

#[test]
fn commands_that_change_existing_rows_create_no_database_either() {
    let dir = assert_no_database_created(&CHANGES);
    // Adding a user is what makes one.
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir.path())
        .args(["users", "add", "sip:alice@example.com"]);
    assert_eq!(stdout(&run(cmd, "")), "added user sip:alice@example.com\n");
    assert_eq!(entries(dir.path()), ["smsbridge.db"]);
}

#[test]
fn read_only_commands_leave_an_existing_database_as_it_was() {
    let db = Db::new();
    db.ok(&["users", "add", "sip:alice@example.com"]);
    let before = entries(db.dir());
    for args in READ_ONLY {
        stdout(&db.run(args, ""));
    }
    assert_eq!(entries(db.dir()), before);
}

/// `smsbridge args…` as a user who cannot write where root could: as
/// ourselves when file modes bind us, else as nobody through `setpriv`.
/// `None` (after a visible skip line) when neither is possible.
fn unprivileged(probe_dir: &Path, args: &[&str]) -> Option<Command> {
    let binding = std::fs::write(probe_dir.join("probe"), b"").is_err();
    let _ = std::fs::remove_file(probe_dir.join("probe"));
    if binding {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        return Some(cmd);
    }
    if !common::command_succeeds("setpriv", &["--version"]) {
        common::skip("file modes do not bind this user and setpriv is missing");
        return None;
    }
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .args(args);
    Some(cmd)
}

#[test]
fn an_unwritable_directory_is_a_permanent_error() {
    let dir = tempfile::tempdir().unwrap();
    let place = dir.path().join("data");
    std::fs::create_dir(&place).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&place, std::fs::Permissions::from_mode(0o555)).unwrap();
    let db = place.join("smsbridge.db");
    let db_arg = db.to_str().unwrap();
    let Some(cmd) = unprivileged(
        &place,
        &["--db", db_arg, "users", "add", "sip:a@example.com"],
    ) else {
        return;
    };
    let (code, err) = failure(&run(cmd, ""));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "smsbridge: cannot create the database {db_arg}: the directory {} is not writable\n",
            place.display()
        )
    );
    assert!(!err.contains("try later"));
    assert_eq!(entries(&place), Vec::<String>::new());
}

#[test]
fn a_read_only_file_is_a_permanent_error_for_writes_and_still_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = dir.path().join("smsbridge.db");
    let db_arg = db.to_str().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["--db", db_arg, "users", "add", "sip:alice@example.com"]);
    stdout(&run(cmd, ""));
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    let add = ["--db", db_arg, "users", "add", "sip:bob@example.com"];
    let Some(cmd) = unprivileged(dir.path(), &add) else {
        return;
    };
    let (code, err) = failure(&run(cmd, ""));
    assert_eq!(
        (code, err),
        (
            1,
            format!("smsbridge: cannot open the database {db_arg}: the file is read-only\n")
        )
    );
    let list = ["--db", db_arg, "users", "list"];
    let Some(cmd) = unprivileged(dir.path(), &list) else {
        return;
    };
    assert_eq!(
        stdout(&run(cmd, "")),
        "SIP                    IMPS  NAME  SMS  PER MINUTE  PER DAY  PHONE  OFFLINE  PASSWORD\n\
         sip:alice@example.com  -     -     yes  10          200      -      store    no\n"
    );
}

#[test]
fn a_missing_directory_is_a_permanent_error() {
    let db = Db::new();
    let missing = db.dir().join("no/such/dir/db");
    let mut cmd = Command::new(BIN);
    cmd.arg("--db")
        .arg(&missing)
        .args(["users", "add", "sip:a@example.com"]);
    let (code, err) = failure(&run(cmd, ""));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "smsbridge: cannot create the database {}: the directory {} does not exist\n",
            missing.display(),
            missing.parent().unwrap().display()
        )
    );
}
