//! The demo's licences (seed 003): every user holds one, a few are over- and a few
//! under-licensed, and the caps show in decisions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use strata_demo::organization;
use strata_engine::{LicenceFit, Privilege};

#[test]
fn every_demo_user_holds_a_licence_some_over_some_under() {
    let org = organization(50).unwrap_or_else(|(i, e)| panic!("operation {i}: {}", e.message));
    assert!(org.licensing_enforced());
    let report = org.licence_report();
    for line in &report.users {
        assert!(
            !line.held.is_empty(),
            "`{}` holds no licence",
            org.user(line.user).name
        );
    }
    let fit = |name: &str| {
        report
            .users
            .iter()
            .find(|l| org.user(l.user).name == name)
            .unwrap()
            .fit
    };
    assert_eq!(fit("ceo"), LicenceFit::OverLicensed);
    assert_eq!(fit("rep_apac2"), LicenceFit::UnderLicensed);
    assert_eq!(fit("rep_west2"), LicenceFit::UnderLicensed);
    assert_eq!(fit("marketer2"), LicenceFit::Fits);
    assert_eq!(fit("agent"), LicenceFit::OverLicensed);
    assert_eq!(fit("rep_east"), LicenceFit::Fits);
    assert!(report.total_cheapest < report.total_held);
    // The under-licensed rep reads opportunities but writes none, and explain says why.
    let rep = org.user_id("rep_apac2").unwrap();
    let opportunity = org.table_id("opportunity").unwrap();
    let own = org
        .table_records(opportunity)
        .iter()
        .copied()
        .find(|r| org.record(*r).owner == strata_engine::Owner::User(rep))
        .expect("rep_apac2 owns an opportunity");
    assert!(org.check(rep, Privilege::Read, own));
    assert!(!org.check(rep, Privilege::Write, own));
    let text = org.render_decision(&org.explain(rep, Privilege::Write, own));
    assert!(
        text.contains("licence Basic caps `write` on `opportunity`"),
        "{text}"
    );
}
