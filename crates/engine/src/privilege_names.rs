//! Dataverse privilege names (`prvCreateAccount`, `prvAppendToOpportunity`,
//! `prvReadcr123_project`, `prvExportToExcel`…) and what they mean in Strata's model: a table ×
//! privilege, or a miscellaneous privilege (docs/solutions.md, D60–D62).
//!
//! The convention is `"prv" + verb + the table's privilege base`, verbs Create, Read, Write,
//! Delete, Append, AppendTo, Assign, Share. The base of a standard table is its schema name or an
//! older name (`prvReadUser` is `systemuser`, `prvReadNote` is `annotation`,
//! `prvReadActivity` is `activitypointer`, `prvReadOrder` is `salesorder`); a custom table's is
//! its logical or schema name with the publisher prefix (`cr123_project`, `msdyn_PostConfig`).
//! Real exports vary in case (`prvAppendtoCategory`): names are matched case-insensitively.
//!
//! Fewer than a hundred miscellaneous privileges are not table privileges, and some begin with a
//! verb (`prvReadLicense`, `prvCreateOwnCalendar`, `prvAppendConstraint`): the catalogue
//! [`MISC_PRIVILEGES`] is consulted first, so that they never read as tables, and so that a
//! misspelt one is flagged instead of kept as free text.

use crate::privilege::Privilege;

/// The miscellaneous (and privacy-related) privileges of Dataverse that Strata knows, in their
/// canonical spelling, sorted case-insensitively. Names found in the privilege editor's
/// Miscellaneous and Privacy-related columns of Dynamics 365 / Dataverse (reference §1.5, §10).
pub const MISC_PRIVILEGES: &[&str] = &[
    "prvActivateBusinessProcessFlow",
    "prvActivateBusinessRule",
    "prvActivateSynchronousWorkflow",
    "prvActOnBehalfOfAnotherUser",
    "prvAddressBook",
    "prvAdminFilter",
    "prvAllowQuickCampaign",
    "prvAppendConstraint",
    "prvApproveKnowledgeArticle",
    "prvApproveRejectEmailAddress",
    "prvAssignManager",
    "prvAssignPosition",
    "prvAssignTerritory",
    "prvBrowseAvailability",
    "prvBulkDelete",
    "prvBulkEdit",
    "prvChangeSqlEncryptionKey",
    "prvCheckAccessOfOthers",
    "prvConfigureInternetMarketing",
    "prvConfigureSharePoint",
    "prvConfigureYammer",
    "prvControlDecrementTerm",
    "prvCreateOrgEmailTemplates",
    "prvCreateOwnCalendar",
    "prvDeleteAuditPartitions",
    "prvDisableBusinessUnit",
    "prvDisableUser",
    "prvDocumentGeneration",
    "prvExportCustomization",
    "prvExportToExcel",
    "prvGoMobile",
    "prvGoOffline",
    "prvImportCustomization",
    "prvISVExtensions",
    "prvLanguageSettings",
    "prvMailMerge",
    "prvMerge",
    "prvOverrideCreatedOnCreatedBy",
    "prvOverridePriceEngineInvoice",
    "prvOverridePriceEngineOpportunity",
    "prvOverridePriceEngineOrder",
    "prvOverridePriceEngineQuote",
    "prvPrint",
    "prvPublishArticle",
    "prvPublishCustomization",
    "prvPublishDuplicateRule",
    "prvPublishKnowledgeArticle",
    "prvPublishOrgMailMergeTemplate",
    "prvPublishOrgReport",
    "prvPublishRSReport",
    "prvQOIOverrideDelete",
    "prvReadAuditPartitions",
    "prvReadAuditSummary",
    "prvReadLicense",
    "prvReadRecordAuditHistory",
    "prvReadSqlEncryptionKey",
    "prvReparentBusinessUnit",
    "prvReparentTeam",
    "prvReparentUser",
    "prvRestoreSqlEncryptionKey",
    "prvRetrieveMultipleSocialInsights",
    "prvRollupGoal",
    "prvSearchAvailability",
    "prvSendAsUser",
    "prvSendInviteForLive",
    "prvSyncToOutlook",
    "prvUseInternetMarketing",
    "prvUseOfficeApps",
    "prvUseTabletApp",
    "prvWebMailMerge",
    "prvWorkflowExecution",
    "prvWriteBusinessClosureCalendar",
    "prvWriteHierarchicalSecurityConfiguration",
    "prvWriteHolidayScheduleCalendar",
];

/// Standard Dataverse tables whose privilege base is not their logical name: (base, logical).
pub const RENAMED_TABLES: &[(&str, &str)] = &[
    ("Activity", "activitypointer"),
    ("Note", "annotation"),
    ("Order", "salesorder"),
    ("Query", "savedquery"),
    ("User", "systemuser"),
];

/// Standard Dataverse tables whose privilege base is their schema name (logical name =
/// lowercase). With [`RENAMED_TABLES`], the tables `prv…` names may name without a publisher
/// prefix.
pub const STANDARD_TABLES: &[&str] = &[
    "Account",
    "AppModule",
    "Article",
    "ArticleTemplate",
    "AsyncOperation",
    "Attribute",
    "AttributeMap",
    "BookableResource",
    "BookableResourceBooking",
    "BookableResourceBookingHeader",
    "BookableResourceCategory",
    "BookableResourceCategoryAssn",
    "BookableResourceCharacteristic",
    "BookableResourceGroup",
    "BookingStatus",
    "BusinessUnit",
    "Calendar",
    "Campaign",
    "CanvasApp",
    "Category",
    "ChannelPropertyGroup",
    "Characteristic",
    "ComplexControl",
    "Competitor",
    "Connection",
    "ConnectionReference",
    "ConnectionRole",
    "Connector",
    "Contact",
    "Contract",
    "ContractTemplate",
    "ConvertRule",
    "CustomControl",
    "CustomControlDefaultConfig",
    "CustomControlResource",
    "CustomerOpportunityRole",
    "CustomerRelationship",
    "Customization",
    "DocumentTemplate",
    "DuplicateRule",
    "DynamicProperty",
    "DynamicPropertyAssociation",
    "DynamicPropertyInstance",
    "DynamicPropertyOptionSetItem",
    "EmailServerProfile",
    "EmailTemplate",
    "Entitlement",
    "EntitlementTemplate",
    "Entity",
    "EntityKey",
    "EntityMap",
    "EnvironmentVariableDefinition",
    "EnvironmentVariableValue",
    "Equipment",
    "Feedback",
    "FieldSecurityProfile",
    "Goal",
    "GoalRollupQuery",
    "HierarchyRule",
    "Import",
    "ImportFile",
    "ImportJob",
    "ImportMap",
    "Incident",
    "Invoice",
    "KnowledgeArticle",
    "KnowledgeArticleViews",
    "KnowledgeBaseRecord",
    "LanguageLocale",
    "Lead",
    "List",
    "Mailbox",
    "MailboxTrackingFolder",
    "MailMergeTemplate",
    "Metric",
    "MobileOfflineProfile",
    "Opportunity",
    "OptionSet",
    "Organization",
    "PersonalDocumentTemplate",
    "PluginAssembly",
    "PluginTraceLog",
    "PluginType",
    "Position",
    "Post",
    "PostFollow",
    "PrincipalObjectAttributeAccess",
    "PrincipalSyncAttributeMap",
    "Product",
    "Publisher",
    "Queue",
    "QueueItem",
    "Quote",
    "RatingModel",
    "RatingValue",
    "Relationship",
    "RelationshipRole",
    "Report",
    "Role",
    "RoutingRule",
    "SalesLiterature",
    "SavedQueryVisualizations",
    "SdkMessage",
    "SdkMessageProcessingStep",
    "SdkMessageProcessingStepImage",
    "SdkMessageProcessingStepSecureConfig",
    "Service",
    "ServiceEndpoint",
    "SharePointDocumentLocation",
    "SharePointSite",
    "Site",
    "SLA",
    "SLAKPIInstance",
    "SocialProfile",
    "Solution",
    "Subject",
    "SyncAttributeMappingProfile",
    "SyncError",
    "SystemApplicationMetadata",
    "SystemForm",
    "Team",
    "TeamTemplate",
    "Territory",
    "Theme",
    "TraceLog",
    "TransactionCurrency",
    "UserApplicationMetadata",
    "UserEntityInstanceData",
    "UserEntityUISettings",
    "UserForm",
    "UserMapping",
    "UserQuery",
    "UserQueryVisualizations",
    "UserSettings",
    "WebResource",
    "WebWizard",
    "WizardAccessPrivilege",
    "WizardPage",
    "Workflow",
    "WorkflowSession",
];

/// What a privilege name means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrivilegeName {
    /// A privilege on a table.
    Table {
        /// The record privilege.
        privilege: Privilege,
        /// The table's logical name (lowercase).
        table: String,
        /// How the table part was recognised.
        kind: TableNameKind,
    },
    /// A miscellaneous privilege, in its canonical spelling.
    Misc(&'static str),
}

/// How the table part of a table privilege name was recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableNameKind {
    /// A standard Dataverse table of the catalogue.
    Standard,
    /// A custom table: a publisher prefix, `_`, a name (`cr123_project`).
    Custom,
    /// Neither: a table the catalogue does not list, or a misspelt miscellaneous privilege.
    Uncatalogued,
}

/// Why a name is not a privilege name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrivilegeNameError {
    /// Not `prv…`, or a verb without a table, or characters no table name has.
    NoPattern,
    /// Not a table privilege and not in the catalogue: maybe this miscellaneous privilege.
    UnknownMisc {
        /// The closest catalogued name, when one is close.
        suggestion: Option<&'static str>,
    },
}

/// The verbs, longest first where one begins another (`AppendTo` before `Append`).
const VERBS: [Privilege; 8] = [
    Privilege::Create,
    Privilege::Read,
    Privilege::Write,
    Privilege::Delete,
    Privilege::AppendTo,
    Privilege::Append,
    Privilege::Assign,
    Privilege::Share,
];

/// The catalogued miscellaneous privilege of this name (any case), in its canonical spelling.
#[must_use]
pub fn misc_privilege(name: &str) -> Option<&'static str> {
    MISC_PRIVILEGES
        .iter()
        .find(|m| m.eq_ignore_ascii_case(name))
        .copied()
}

/// The logical name of the standard table whose privilege base this is (any case).
#[must_use]
pub fn standard_table(base: &str) -> Option<String> {
    if let Some((_, logical)) = RENAMED_TABLES
        .iter()
        .find(|(b, _)| b.eq_ignore_ascii_case(base))
    {
        return Some((*logical).to_owned());
    }
    STANDARD_TABLES
        .iter()
        .find(|b| b.eq_ignore_ascii_case(base))
        .map(|b| b.to_ascii_lowercase())
}

fn is_table_word(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
}

fn is_custom_shape(s: &str) -> bool {
    s.split_once('_')
        .is_some_and(|(prefix, rest)| !prefix.is_empty() && !rest.is_empty())
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// What a Dataverse privilege name means: a catalogued miscellaneous privilege first, then a
/// verb and a table (standard, custom, or uncatalogued), else an error.
///
/// # Errors
///
/// [`PrivilegeNameError::NoPattern`] when the name is not `prv` + a known verb + a table word
/// and not a catalogued miscellaneous privilege; [`PrivilegeNameError::UnknownMisc`] when it
/// is `prv` + a word that is neither (with the closest catalogued name).
pub fn parse_privilege_name(name: &str) -> Result<PrivilegeName, PrivilegeNameError> {
    if let Some(m) = misc_privilege(name) {
        return Ok(PrivilegeName::Misc(m));
    }
    let Some(rest) = strip_prefix_ci(name, "prv") else {
        return Err(PrivilegeNameError::NoPattern);
    };
    let mut candidates = Vec::new();
    for verb in VERBS {
        if let Some(table) = strip_prefix_ci(rest, verb.verb())
            && is_table_word(table)
        {
            candidates.push((verb, table));
        }
    }
    // `prvAppendToX` may read as Append + `ToX`: a recognised table decides, else the longer verb.
    let classify = |table: &str| {
        if let Some(logical) = standard_table(table) {
            (TableNameKind::Standard, logical)
        } else if is_custom_shape(table) {
            (TableNameKind::Custom, table.to_ascii_lowercase())
        } else {
            (TableNameKind::Uncatalogued, table.to_ascii_lowercase())
        }
    };
    let mut best: Option<(Privilege, TableNameKind, String)> = None;
    for (verb, table) in candidates {
        let (kind, logical) = classify(table);
        let better = match &best {
            None => true,
            Some((_, k, _)) => *k == TableNameKind::Uncatalogued && kind != *k,
        };
        if better {
            best = Some((verb, kind, logical));
        }
    }
    if let Some((privilege, kind, table)) = best {
        return Ok(PrivilegeName::Table {
            privilege,
            table,
            kind,
        });
    }
    if is_table_word(rest) {
        return Err(PrivilegeNameError::UnknownMisc {
            suggestion: closest_misc(name),
        });
    }
    Err(PrivilegeNameError::NoPattern)
}

/// The catalogued miscellaneous privilege closest to `name` (edit distance at most 3, case
/// ignored), for an error's hint.
#[must_use]
pub fn closest_misc(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    MISC_PRIVILEGES
        .iter()
        .map(|m| (distance(&lower, &m.to_ascii_lowercase()), *m))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, m)| m)
}

fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The Dataverse name of a privilege on a table given by its logical name: the standard
/// table's privilege base (`prvReadAccount`, `prvReadUser` for `systemuser`), else the logical
/// name as is (`prvReadcr123_project`).
#[must_use]
pub fn table_privilege_name(privilege: Privilege, table: &str) -> String {
    let base = RENAMED_TABLES
        .iter()
        .find(|(_, logical)| *logical == table)
        .map(|(b, _)| *b)
        .or_else(|| {
            STANDARD_TABLES
                .iter()
                .find(|b| b.eq_ignore_ascii_case(table))
                .copied()
        })
        .unwrap_or(table);
    format!("prv{}{base}", privilege.verb())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> (Privilege, String, TableNameKind) {
        match parse_privilege_name(name) {
            Ok(PrivilegeName::Table {
                privilege,
                table,
                kind,
            }) => (privilege, table, kind),
            other => (
                Privilege::Share,
                format!("{other:?}"),
                TableNameKind::Uncatalogued,
            ),
        }
    }

    #[test]
    fn table_privileges_map_to_logical_names() {
        assert_eq!(
            table("prvCreateAccount"),
            (Privilege::Create, "account".into(), TableNameKind::Standard)
        );
        assert_eq!(
            table("prvAppendToOpportunity"),
            (
                Privilege::AppendTo,
                "opportunity".into(),
                TableNameKind::Standard
            )
        );
        assert_eq!(
            table("prvAppendtoCategory"),
            (
                Privilege::AppendTo,
                "category".into(),
                TableNameKind::Standard
            )
        );
        assert_eq!(
            table("prvAppendOpportunity"),
            (
                Privilege::Append,
                "opportunity".into(),
                TableNameKind::Standard
            )
        );
        assert_eq!(
            table("prvReadUser"),
            (
                Privilege::Read,
                "systemuser".into(),
                TableNameKind::Standard
            )
        );
        assert_eq!(table("prvReadNote").1, "annotation",);
        assert_eq!(
            table("PRVREADINCIDENT"),
            (Privilege::Read, "incident".into(), TableNameKind::Standard)
        );
        assert_eq!(
            table("prvReadcr123_project"),
            (
                Privilege::Read,
                "cr123_project".into(),
                TableNameKind::Custom
            )
        );
        assert_eq!(
            table("prvWritemsdyn_PostConfig"),
            (
                Privilege::Write,
                "msdyn_postconfig".into(),
                TableNameKind::Custom
            )
        );
        assert_eq!(
            table("prvShareWidget"),
            (
                Privilege::Share,
                "widget".into(),
                TableNameKind::Uncatalogued
            )
        );
        assert_eq!(
            table("prvAssignBusinessUnit"),
            (
                Privilege::Assign,
                "businessunit".into(),
                TableNameKind::Standard
            )
        );
    }

    #[test]
    fn misc_privileges_come_first_and_misspellings_are_flagged() {
        assert_eq!(
            parse_privilege_name("prvReadLicense"),
            Ok(PrivilegeName::Misc("prvReadLicense"))
        );
        assert_eq!(
            parse_privilege_name("prvexporttoexcel"),
            Ok(PrivilegeName::Misc("prvExportToExcel"))
        );
        assert_eq!(
            parse_privilege_name("prvAppendConstraint"),
            Ok(PrivilegeName::Misc("prvAppendConstraint"))
        );
        assert_eq!(
            parse_privilege_name("prvExportToExcell"),
            Err(PrivilegeNameError::UnknownMisc {
                suggestion: Some("prvExportToExcel")
            })
        );
        assert_eq!(
            parse_privilege_name("prvBulkEdt"),
            Err(PrivilegeNameError::UnknownMisc {
                suggestion: Some("prvBulkEdit")
            })
        );
        assert_eq!(
            parse_privilege_name("ReadAccount"),
            Err(PrivilegeNameError::NoPattern)
        );
        assert!(parse_privilege_name("prvRead").is_err());
        assert_eq!(
            parse_privilege_name("prvRead Account"),
            Err(PrivilegeNameError::NoPattern)
        );
        assert_eq!(parse_privilege_name(""), Err(PrivilegeNameError::NoPattern));
    }

    #[test]
    fn names_are_written_back_as_dataverse_writes_them() {
        assert_eq!(
            table_privilege_name(Privilege::AppendTo, "account"),
            "prvAppendToAccount"
        );
        assert_eq!(
            table_privilege_name(Privilege::Read, "systemuser"),
            "prvReadUser"
        );
        assert_eq!(
            table_privilege_name(Privilege::Read, "cr123_project"),
            "prvReadcr123_project"
        );
        for name in MISC_PRIVILEGES {
            assert_eq!(parse_privilege_name(name), Ok(PrivilegeName::Misc(name)));
        }
        for base in STANDARD_TABLES {
            for p in Privilege::ALL {
                let written = table_privilege_name(p, &base.to_ascii_lowercase());
                assert_eq!(written, format!("prv{}{base}", p.verb()));
                if misc_privilege(&written).is_some() {
                    // `prvAssignPosition`, `prvAssignTerritory`: organisation-owned tables have
                    // no Assign privilege; the name is the miscellaneous privilege (D60).
                    continue;
                }
                assert_eq!(
                    table(&written),
                    (p, base.to_ascii_lowercase(), TableNameKind::Standard),
                    "{written}"
                );
            }
        }
    }
}
