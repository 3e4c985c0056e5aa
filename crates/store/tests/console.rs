//! The console's tables (users, sessions, API tokens, policy history), on
//! SQLite and on a real PostgreSQL.

mod common;

use common::{open, Kind};
use mxguard_store::*;
use sqlx::Row;

async fn users_sessions_tokens_history(kind: Kind) {
    let (s, _db) = open(kind, "console").await;
    assert_eq!(s.count_users().await.unwrap(), 0);
    assert!(s
        .add_first_user("admin", "$argon2id$x", "admin")
        .await
        .unwrap());
    assert!(
        !s.add_first_user("other", "$argon2id$y", "admin")
            .await
            .unwrap(),
        "only when there is no user"
    );
    s.add_user("eve", "$argon2id$e", "auditor").await.unwrap();
    assert!(matches!(
        s.add_user("eve", "h", "admin").await,
        Err(StoreError::Invalid(_))
    ));
    let users = s.users().await.unwrap();
    assert_eq!(
        users
            .iter()
            .map(|u| (u.name.as_str(), u.role.as_str()))
            .collect::<Vec<_>>(),
        vec![("admin", "admin"), ("eve", "auditor")]
    );
    let (u, h) = s.user_with_hash("eve").await.unwrap().unwrap();
    assert_eq!((u.role.as_str(), h.as_str()), ("auditor", "$argon2id$e"));
    assert!(s.user_with_hash("nobody").await.unwrap().is_none());

    // Sessions: found by the token, stored hashed, expire, end with a password change.
    let now = now_secs();
    s.create_session("tok-a", "eve", "csrf-a", now + 60, "192.0.2.1")
        .await
        .unwrap();
    s.create_session("tok-old", "eve", "csrf-o", now - 1, "192.0.2.1")
        .await
        .unwrap();
    let sess = s.session("tok-a").await.unwrap().unwrap();
    assert_eq!(
        (sess.user.as_str(), sess.role.as_str(), sess.csrf.as_str()),
        ("eve", "auditor", "csrf-a")
    );
    assert!(s.session("tok-old").await.unwrap().is_none(), "expired");
    assert!(s.session("tok-b").await.unwrap().is_none());
    let raw: i64 = sqlx::query("SELECT COUNT(*) FROM sessions WHERE token_hash = $1")
        .bind("tok-a".to_string())
        .fetch_one(s.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(raw, 0, "the token itself is not stored");
    assert_eq!(s.expire_sessions().await.unwrap(), 1);
    // A role change applies to live sessions at once.
    assert!(s.set_role("eve", "admin").await.unwrap());
    assert_eq!(s.session("tok-a").await.unwrap().unwrap().role, "admin");
    assert!(s.set_role("eve", "auditor").await.unwrap());
    assert!(s.set_password("eve", "$argon2id$new").await.unwrap());
    assert!(
        s.session("tok-a").await.unwrap().is_none(),
        "password change ends sessions"
    );
    assert!(!s.set_password("nobody", "x").await.unwrap());

    // API tokens: the role is capped by the user's.
    let id = s
        .create_api_token("mxg_tok1", "metrics", "eve", "admin", None)
        .await
        .unwrap();
    let t = s.api_token("mxg_tok1").await.unwrap().unwrap();
    assert_eq!(
        (t.id, t.role.as_str(), t.user.as_str()),
        (id, "auditor", "eve")
    );
    assert_eq!(t.prefix, "mxg_tok1");
    assert!(s.api_token("mxg_nope").await.unwrap().is_none());
    s.create_api_token("mxg_exp", "old", "admin", "admin", Some(now - 5))
        .await
        .unwrap();
    assert!(s.api_token("mxg_exp").await.unwrap().is_none(), "expired");
    let id2 = s
        .create_api_token("mxg_tok2", "ops", "admin", "admin", None)
        .await
        .unwrap();
    assert_eq!(
        s.api_token("mxg_tok2").await.unwrap().unwrap().role,
        "admin"
    );
    assert_eq!(s.api_tokens(None).await.unwrap().len(), 3);
    assert_eq!(s.api_tokens(Some("eve")).await.unwrap().len(), 1);
    assert!(s.api_tokens(None).await.unwrap()[0].last_used.is_none() || id2 > 0);
    assert!(s.delete_api_token(id2).await.unwrap());
    assert!(!s.delete_api_token(id2).await.unwrap());
    assert!(s.api_token("mxg_tok2").await.unwrap().is_none());

    // Deleting a user takes its sessions and tokens along.
    s.create_session("tok-c", "eve", "c", now + 60, "::1")
        .await
        .unwrap();
    assert!(s.delete_user("eve").await.unwrap());
    assert!(s.session("tok-c").await.unwrap().is_none());
    assert!(s.api_token("mxg_tok1").await.unwrap().is_none());
    assert!(!s.delete_user("eve").await.unwrap());

    // Policy history, newest first.
    let a = s
        .add_policy_change(
            "admin",
            "mx1",
            "/etc/p.toml",
            "a = 1\n",
            "+a = 1\n",
            "first",
        )
        .await
        .unwrap();
    let b = s
        .add_policy_change(
            "admin",
            "mx2",
            "/etc/p.toml",
            "a = 2\n",
            "-a = 1\n+a = 2\n",
            "second\0nul",
        )
        .await
        .unwrap();
    assert!(b > a);
    let h = s.policy_history(10).await.unwrap();
    assert_eq!(h.iter().map(|c| c.id).collect::<Vec<_>>(), vec![b, a]);
    assert_eq!(h[0].node, "mx2");
    assert_eq!(h[0].comment, "second\u{FFFD}nul");
    assert_eq!(s.policy_change(a).await.unwrap().unwrap().text, "a = 1\n");
    assert!(s.policy_change(b + 100).await.unwrap().is_none());
    assert_eq!(s.policy_history(1).await.unwrap().len(), 1);
    assert!(s.schema_version().await.unwrap() >= 4);
}
both!(users_sessions_tokens_history);
