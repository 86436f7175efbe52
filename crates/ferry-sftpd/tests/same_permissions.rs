//! One table, two protocols: the same operations through FTP (a raw control connection) and SFTP
//! (paramiko), for users with different permissions, must get the same permission answers — both go
//! through the one policy layer. A named path's metadata needs no permission; every other operation
//! needs its own.

mod common;

use std::process::Command;

use common::{run, skip_unless_paramiko, PASSWORD, USER};
use ferry_auth::Permissions;
use ferry_testkit::ftp::{Control, Options, TestServer as FtpServer};
use ferry_testkit::sftp::TestServer as SftpServer;

/// The operations, in the order both clients run them.
const OPS: [&str; 9] = [
    "stat", "list", "read", "write", "mkdir", "delete", "rmdir", "rename", "mtime",
];

/// What each operation needs.
fn expected(op: &str, p: Permissions) -> &'static str {
    let allowed = match op {
        "stat" => true,
        "list" => p.list,
        "read" => p.read,
        "write" | "mtime" => p.write,
        "mkdir" => p.mkdir,
        "delete" | "rmdir" => p.delete,
        "rename" => p.rename,
        other => panic!("unknown operation {other}"),
    };
    if allowed {
        "ok"
    } else {
        "denied"
    }
}

/// The files every operation finds: each mutating operation has its own target.
fn populate(path: impl Fn(&str) -> std::path::PathBuf) {
    for f in ["f.txt", "del.txt", "ren.txt"] {
        std::fs::write(path(f), b"content").expect("write");
    }
    std::fs::create_dir(path("rmd")).expect("mkdir");
}

fn classify(code: u16, text: &str) -> String {
    match code {
        100..=399 => "ok".into(),
        550 if text.contains("Permission denied") => "denied".into(),
        _ => format!("other: {text}"),
    }
}

fn ftp_answers(perms: Permissions) -> Vec<String> {
    let server = FtpServer::start_with(Options {
        permissions: Some(perms),
        ..Options::default()
    });
    populate(|rel| server.path(rel));
    let mut c = Control::connect(server.addr);
    c.login(USER, PASSWORD);
    c.expect("TYPE I", 200);
    OPS.iter()
        .map(|op| {
            let reply = match *op {
                "stat" => c.cmd("MLST f.txt"),
                "list" => c.download("MLSD").1,
                "read" => c.download("RETR f.txt").1,
                "write" => c.upload("STOR new.txt", b"x"),
                "mkdir" => c.cmd("MKD m"),
                "delete" => c.cmd("DELE del.txt"),
                "rmdir" => c.cmd("RMD rmd"),
                "rename" => {
                    let first = c.cmd("RNFR ren.txt");
                    if first.code == 350 {
                        c.cmd("RNTO renamed.txt")
                    } else {
                        first
                    }
                }
                "mtime" => c.cmd("MFMT 20200101000000 f.txt"),
                other => panic!("unknown operation {other}"),
            };
            classify(reply.code, &reply.text())
        })
        .collect()
}

fn sftp_answers(perms: Permissions) -> Vec<String> {
    let server = SftpServer::start_with(perms, |_| {});
    populate(|rel| server.path(rel));
    let script = r#"
import os, paramiko
t = paramiko.Transport(("127.0.0.1", int(os.environ["PORT"])))
t.connect(username=os.environ["USER_NAME"], password=os.environ["PASSWORD"])
sftp = paramiko.SFTPClient.from_transport(t)
def write():
    with sftp.open("/new.txt", "wb") as f:
        f.write(b"x")
ops = [
    ("stat", lambda: sftp.stat("/f.txt")),
    ("list", lambda: sftp.listdir("/")),
    ("read", lambda: sftp.open("/f.txt", "rb").read()),
    ("write", write),
    ("mkdir", lambda: sftp.mkdir("/m")),
    ("delete", lambda: sftp.remove("/del.txt")),
    ("rmdir", lambda: sftp.rmdir("/rmd")),
    ("rename", lambda: sftp.rename("/ren.txt", "/renamed.txt")),
    ("mtime", lambda: sftp.utime("/f.txt", (1577836800, 1577836800))),
]
for name, op in ops:
    try:
        op()
        print(name, "ok")
    except PermissionError:
        print(name, "denied")
    except Exception as e:
        print(name, "other:", repr(e))
t.close()
"#;
    let mut cmd: Command = server.client("python3");
    cmd.arg("-c")
        .arg(script)
        .env("PORT", server.port().to_string())
        .env("USER_NAME", USER)
        .env("PASSWORD", PASSWORD);
    let r = run(&mut cmd, None);
    r.assert_success();
    let lines: Vec<String> = r.out().lines().map(str::to_owned).collect();
    OPS.iter()
        .map(|op| {
            let prefix = format!("{op} ");
            lines
                .iter()
                .find_map(|l| l.strip_prefix(&prefix))
                .unwrap_or_else(|| panic!("no answer for {op}: {}", r.dump()))
                .to_owned()
        })
        .collect()
}

#[test]
fn ftp_and_sftp_give_the_same_permission_answers() {
    if skip_unless_paramiko() {
        return;
    }
    let none = Permissions {
        list: false,
        read: false,
        write: false,
        delete: false,
        rename: false,
        mkdir: false,
    };
    let profiles = [
        ("none", none),
        ("ro", Permissions::read_only()),
        ("write only", Permissions { write: true, ..none }),
        (
            "list and mkdir",
            Permissions {
                list: true,
                mkdir: true,
                ..none
            },
        ),
        (
            "delete and rename",
            Permissions {
                delete: true,
                rename: true,
                ..none
            },
        ),
        ("all", Permissions::all()),
    ];
    for (name, perms) in profiles {
        let want: Vec<String> = OPS.iter().map(|op| expected(op, perms).to_owned()).collect();
        let ftp = ftp_answers(perms);
        let sftp = sftp_answers(perms);
        for (i, op) in OPS.iter().enumerate() {
            assert_eq!(ftp[i], want[i], "FTP {op} for {name}");
            assert_eq!(sftp[i], want[i], "SFTP {op} for {name}");
        }
    }
}
