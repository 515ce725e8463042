//! Closed sets of values picked by name on command lines ([`ModelKind`](crate::ModelKind),
//! [`Format`](crate::Format)): one macro gives each its `Display`, its `FromStr` and the
//! error that lists the valid names.

/// The valid names, as an error message lists them.
pub(crate) fn valid_list(names: &[&str]) -> String {
    names.join(", ")
}

/// For `$ty` with `const ALL: [$ty; N]` and `fn name(self) -> &'static str`: `Display`
/// prints the name, `FromStr` finds the value of that name or fails with the error type
/// `$err` it defines, whose message calls the set's values `$what`s and lists them.
macro_rules! named_set {
    ($ty:ident, $err:ident, $what:literal) => {
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        #[doc = concat!("An unknown ", $what, " name; the message lists the valid ones.")]
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $err {
            /// What was given.
            pub given: String,
        }

        impl std::fmt::Display for $err {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let valid = $crate::named::valid_list(&$ty::ALL.map($ty::name));
                let (what, given) = ($what, &self.given);
                write!(f, "unknown {what} `{given}`; valid {what}s: {valid}")
            }
        }

        impl std::error::Error for $err {}

        impl std::str::FromStr for $ty {
            type Err = $err;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::ALL
                    .into_iter()
                    .find(|v| v.name() == s)
                    .ok_or_else(|| $err {
                        given: s.to_string(),
                    })
            }
        }
    };
}
