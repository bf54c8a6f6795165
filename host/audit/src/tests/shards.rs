//! Shards checked together: a leader killed between its disk and the
//! database, the next leader settling what it left — and each conflict
//! the check must name, made by changing one record of that story.

use crate::{
    Accepted, At, Conflict, Entry, Event, LockGrant, LockMode, Record, Shard, State, ZERO_HASH,
    check_together,
};

/// A shard being written: records numbered in order, at given times.
struct Trail {
    origin: &'static str,
    records: Vec<Record>,
}

impl Trail {
    fn new(origin: &'static str) -> Trail {
        Trail {
            origin,
            records: Vec::new(),
        }
    }

    fn at(&mut self, time_ns: u64, runway: &str, dataset: Option<&str>, event: Event) -> u64 {
        let seq = self.records.len() as u64;
        self.records.push(Record {
            seq,
            time_ns,
            prev: ZERO_HASH,
            prev_dataset: None,
            entry: Entry {
                runway: runway.into(),
                agent: "writer".into(),
                plugin: None,
                dataset: dataset.map(str::to_string),
                event,
            },
        });
        seq
    }

    fn leading(&mut self, time_ns: u64, term: u64, accepted: &[(&str, u64)]) -> u64 {
        let accepted = accepted
            .iter()
            .map(|(origin, seq)| Accepted {
                origin: origin.to_string(),
                seq: *seq,
            })
            .collect();
        self.at(time_ns, "", None, Event::Leading { term, accepted })
    }

    fn filing(&mut self, time_ns: u64, runway: &str) {
        let event = Event::Filing {
            schema: 2,
            manifest: "{}".into(),
            input: Vec::new(),
        };
        self.at(time_ns, runway, None, event);
    }

    fn grant(&mut self, time_ns: u64, runway: &str, mode: LockMode, token: u64) {
        let event = Event::LockGranted { mode, token };
        self.at(time_ns, runway, Some("d"), event);
    }

    /// COMMITTING and COMMITTED: a run's writes under `token`; gives the
    /// COMMITTED record's number.
    fn commit(&mut self, time_ns: u64, runway: &str, token: u64) -> u64 {
        self.committing(time_ns, runway, token);
        self.at(time_ns, runway, Some("d"), committed(token))
    }

    /// COMMITTING alone: a run's intent to write under `token`.
    fn committing(&mut self, time_ns: u64, runway: &str, token: u64) {
        let locks = vec![LockGrant {
            dataset: "d".into(),
            mode: LockMode::Exclusive,
            token,
        }];
        let changes = ZERO_HASH;
        self.at(time_ns, runway, None, Event::Committing { locks, changes });
    }

    /// A run that landed: its commit, SUCCEEDED and RELEASE.
    fn land(&mut self, time_ns: u64, runway: &str, token: u64) {
        self.commit(time_ns, runway, token);
        let succeeded = Event::Succeeded { output: ZERO_HASH };
        self.at(time_ns, runway, None, succeeded);
        let released = Event::LockReleased {
            mode: LockMode::Exclusive,
            token,
        };
        self.at(time_ns, runway, Some("d"), released);
    }

    fn shard(self) -> Shard {
        Shard {
            origin: self.origin.into(),
            records: self.records,
        }
    }
}

/// Host a leads term 1 and lands r1; it grants d to r2 and is killed as
/// r2 lands: its SUCCEEDED for r2 is on its disk only. Host b leads term
/// 2, finds a's shard taken up to `taken`, fails r2 (a was lost during
/// its run), grants d again and lands it. `b_more` writes more into b's
/// shard before it ends.
fn story(taken: impl Fn(u64) -> u64, b_more: impl FnOnce(&mut Trail)) -> Vec<Shard> {
    let mut a = Trail::new("a");
    a.leading(1, 1, &[]);
    a.filing(2, "r1");
    a.filing(2, "r2");
    a.grant(3, "r1", LockMode::Exclusive, 1);
    a.land(4, "r1", 1);
    a.grant(5, "r2", LockMode::Exclusive, 2);
    let last_taken = a.commit(6, "r2", 2);
    a.at(7, "r2", None, Event::Succeeded { output: ZERO_HASH });

    let mut b = Trail::new("b");
    b.leading(10, 2, &[("a", taken(last_taken))]);
    let reason = "host a lost during the run".into();
    b.at(11, "r2", None, Event::Failed { reason });
    b.grant(12, "r2", LockMode::Exclusive, 3);
    b.land(13, "r2", 3);
    b_more(&mut b);
    vec![a.shard(), b.shard()]
}

fn committed(token: u64) -> Event {
    Event::Committed {
        token,
        writes: 1,
        deletes: 0,
    }
}

fn at(origin: &str, seq: u64) -> At {
    At {
        origin: origin.into(),
        seq,
    }
}

#[test]
fn a_killed_leaders_untaken_records_are_set_aside_and_the_rest_agrees() {
    let together = check_together(&story(|last| last, |_| {})).expect("they agree");
    assert_eq!(together.shards, 2);
    assert_eq!(together.set_aside, 1, "a's SUCCEEDED for r2");
    assert_eq!(together.terms, [1, 2]);
    assert_eq!(
        (together.runways, together.grants, together.commits),
        (2, 3, 3)
    );
}

#[test]
fn a_record_the_history_took_is_not_set_aside() {
    // Had the history taken a's SUCCEEDED, r2 succeeded on both hosts.
    let shards = story(|last| last + 1, |_| {});
    let conflict = check_together(&shards).unwrap_err();
    assert!(
        matches!(&conflict, Conflict::SucceededTwice { runway, first, second }
            if runway == "r2" && first.origin == "a" && second.origin == "b"),
        "{conflict}"
    );
    assert!(conflict.to_string().contains("runway r2 succeeded twice"));
}

#[test]
fn each_conflict_names_both_records() {
    let token = check_together(&story(|l| l, |b| b.grant(20, "r3", LockMode::Shared, 2)));
    assert_eq!(
        token.unwrap_err(),
        Conflict::TokenTwice {
            token: 2,
            first: at("a", 8),
            second: at("b", 7),
        }
    );

    let filed = check_together(&story(|l| l, |b| b.filing(20, "r1")));
    assert!(matches!(filed, Err(Conflict::FiledTwice { runway, .. }) if runway == "r1"));

    let mut withheld = story(|l| l, |_| {});
    withheld.remove(0);
    assert_eq!(
        check_together(&withheld).unwrap_err(),
        Conflict::ShardMissing {
            origin: "a".into(),
            named_by: at("b", 0),
        }
    );

    let term = check_together(&story(
        |l| l,
        |b| {
            b.leading(20, 1, &[]);
        },
    ));
    assert!(matches!(term, Err(Conflict::TermLedTwice { term: 1, .. })));

    let alone = check_together(&story(
        |l| l,
        |b| {
            b.at(20, "r3", Some("d"), committed(9));
        },
    ));
    assert_eq!(
        alone.unwrap_err(),
        Conflict::CommittedAlone {
            at: at("b", 7),
            dataset: "d".into(),
            token: 9,
        }
    );
}

#[test]
fn a_grant_lasts_until_its_release_or_its_attempt_ends() {
    // b grants d before it failed r2: a still held it.
    let mut a = Trail::new("a");
    a.leading(1, 1, &[]);
    a.grant(5, "r2", LockMode::Exclusive, 2);
    let mut b = Trail::new("b");
    b.leading(10, 2, &[("a", 1)]);
    b.grant(11, "r3", LockMode::Shared, 3);
    let reason = "host a lost during the run".into();
    b.at(12, "r2", None, Event::Failed { reason });
    let conflict = check_together(&[a.shard(), b.shard()]).unwrap_err();
    assert_eq!(
        conflict,
        Conflict::Overlap {
            dataset: "d".into(),
            first: at("a", 1),
            first_token: 2,
            second: at("b", 1),
            second_token: 3,
        }
    );

    // Shared holders together are fine; an exclusive one after both
    // ended is too, and one while a shared holder holds is not.
    let mut c = Trail::new("c");
    c.grant(1, "s1", LockMode::Shared, 1);
    c.grant(2, "s2", LockMode::Shared, 2);
    c.at(3, "s1", None, Event::Failed { reason: "x".into() });
    let to = State::Cancelled;
    let moved = Event::Moved {
        to,
        reason: "cancelled".into(),
        by: None,
    };
    c.at(4, "s2", None, moved);
    c.grant(4, "x1", LockMode::Exclusive, 3);
    c.grant(5, "s3", LockMode::Shared, 4);
    let conflict = check_together(&[c.shard()]).unwrap_err();
    assert!(
        matches!(
            &conflict,
            Conflict::Overlap {
                first_token: 3,
                second_token: 4,
                ..
            }
        ),
        "{conflict}"
    );
}

/// A crew flies r3 for leader b; its claim is taken before its records
/// reach the history (b failed r3, "host c+crew lost", and landed it
/// again). The crew's shard still holds its own SUCCEEDED for r3 — set
/// aside by its ABANDONED record; without that record, r3 succeeded twice.
#[test]
fn a_crews_abandoned_attempt_is_set_aside() {
    let crew = |abandoned: bool| {
        let mut c = Trail::new("c+crew");
        c.at(20, "r3", None, Event::Started { attempt: 1 });
        c.at(21, "r3", None, Event::Succeeded { output: ZERO_HASH });
        if abandoned {
            let reason = "the claim was taken".into();
            c.at(22, "r3", None, Event::Abandoned { reason });
        }
        c.shard()
    };
    let leader = |b: &mut Trail| {
        b.filing(14, "r3");
        b.grant(15, "r3", LockMode::Exclusive, 4);
        let reason = "host c+crew lost during the run".into();
        b.at(23, "r3", None, Event::Failed { reason });
        b.grant(24, "r3", LockMode::Exclusive, 5);
        b.land(25, "r3", 5);
    };
    let mut shards = story(|last| last, leader);
    shards.push(crew(true));
    let together = check_together(&shards).expect("they agree");
    assert_eq!(
        together.set_aside,
        1 + 3,
        "a's SUCCEEDED, and the crew's attempt"
    );

    let mut shards = story(|last| last, leader);
    shards.push(crew(false));
    let conflict = check_together(&shards).unwrap_err();
    assert!(
        matches!(&conflict, Conflict::SucceededTwice { runway, .. } if runway == "r3"),
        "{conflict}"
    );
}

/// A crew killed after its commit landed, before its end reached the
/// history: it restarts and abandons the attempt, and the leader settles
/// the run from the database's commits row with a COMMITTED of its own.
/// That COMMITTED has its COMMITTING in the crew's set-aside attempt; with
/// no COMMITTING anywhere, it stands alone.
#[test]
fn a_commit_settled_for_an_abandoned_attempt_has_its_committing() {
    let crew = |committing: bool| {
        let mut c = Trail::new("c+crew");
        c.at(20, "r3", None, Event::Started { attempt: 1 });
        if committing {
            c.committing(21, "r3", 4);
        }
        c.at(22, "r3", None, Event::Succeeded { output: ZERO_HASH });
        let reason = "the crew restarted".into();
        c.at(23, "r3", None, Event::Abandoned { reason });
        c.shard()
    };
    let leader = |b: &mut Trail| {
        b.filing(14, "r3");
        b.grant(15, "r3", LockMode::Exclusive, 4);
        b.at(24, "r3", Some("d"), committed(4));
        b.at(24, "r3", None, Event::Succeeded { output: ZERO_HASH });
    };
    let mut shards = story(|last| last, leader);
    shards.push(crew(true));
    check_together(&shards).expect("they agree");

    let mut shards = story(|last| last, leader);
    shards.push(crew(false));
    let conflict = check_together(&shards).unwrap_err();
    assert!(
        matches!(&conflict, Conflict::CommittedAlone { token: 4, .. }),
        "{conflict}"
    );
}
