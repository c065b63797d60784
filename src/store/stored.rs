//! Stored values decoded into their domain types once, at the store boundary, so that no
//! handler parses a column again and none falls back to a default when a value cannot be
//! read.
//!
//! - Scope columns (`scopes`) become a [`ScopeSet`]. Names the catalogue no longer knows
//!   grant nothing and are dropped (an imported or older row keeps its other scopes).
//! - The PKCE method (`code_challenge_method`) becomes a [`pkce::Method`]; any other text
//!   is a decoding error, never `plain` (RFC 7636 §4.3 names exactly two methods, and a
//!   grant whose method cannot be read must not be redeemable with a weaker check).
//! - A group's `visibility` becomes a [`Visibility`] and a member's `access_level` an
//!   [`AccessLevel`]; anything else is a decoding error (a group must not become more
//!   visible, nor a member more powerful, because a value could not be read).

use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Type};

use crate::domain::group::{AccessLevel, Visibility};
use crate::domain::pkce;
use crate::domain::resource::Resources;
use crate::domain::scope::ScopeSet;

/// A text column decoded by a parser (`None` is a decoding error).
/// A domain type stored as the column type `$inner`: the same SQL type.
macro_rules! stored_as {
    ($ty:ty, $inner:ty) => {
        impl<DB: Database> Type<DB> for $ty
        where
            $inner: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <$inner as Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <$inner as Type<DB>>::compatible(ty)
            }
        }
    };
}

macro_rules! text_column {
    ($ty:ty, $parse:expr, $what:literal) => {
        stored_as!($ty, str);

        impl<'r, DB: Database> Decode<'r, DB> for $ty
        where
            &'r str: Decode<'r, DB>,
        {
            fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <&str as Decode<DB>>::decode(value)?;
                $parse(text)
                    .ok_or_else(|| format!(concat!("unknown stored ", $what, " {:?}"), text).into())
            }
        }

        // The same decoding for the SQLite readers and writer, which use rusqlite.
        impl rusqlite::types::FromSql for $ty {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                let text = value.as_str()?;
                $parse(text).ok_or_else(|| {
                    rusqlite::types::FromSqlError::Other(
                        format!(concat!("unknown stored ", $what, " {:?}"), text).into(),
                    )
                })
            }
        }
    };
}

text_column!(ScopeSet, |text| Some(ScopeSet::from_stored(text)), "scopes");
text_column!(pkce::Method, pkce::Method::parse, "PKCE method");
text_column!(Visibility, Visibility::parse, "visibility");

// RFC 8707 resource columns: space-separated URIs, NULL for none.
stored_as!(Resources, str);

impl<'r, DB: Database> Decode<'r, DB> for Resources
where
    Option<&'r str>: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Resources::from_stored(
            <Option<&str> as Decode<DB>>::decode(value)?,
        ))
    }
}

impl rusqlite::types::FromSql for Resources {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        Ok(Resources::from_stored(value.as_str_or_null()?))
    }
}

stored_as!(AccessLevel, i16);

impl<'r, DB: Database> Decode<'r, DB> for AccessLevel
where
    i16: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let level = <i16 as Decode<DB>>::decode(value)?;
        AccessLevel::new(i64::from(level))
            .ok_or_else(|| format!("unknown stored access level {level}").into())
    }
}
