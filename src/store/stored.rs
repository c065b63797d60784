//! Stored values decoded into their domain types once, at the store boundary, so that no
//! handler parses a column again and none falls back to a default when a value cannot be
//! read.
//!
//! - Scope columns (`scopes`) become a [`ScopeSet`]. Names the catalogue no longer knows
//!   grant nothing and are dropped (an imported or older row keeps its other scopes).
//! - The PKCE method (`code_challenge_method`) becomes a [`pkce::Method`]; any other text
//!   is a decoding error, never `plain` (RFC 7636 §4.3 names exactly two methods, and a
//!   grant whose method cannot be read must not be redeemable with a weaker check).

use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Type};

use crate::domain::pkce;
use crate::domain::scope::ScopeSet;

impl<DB: Database> Type<DB> for ScopeSet
where
    str: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <str as Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <str as Type<DB>>::compatible(ty)
    }
}

impl<'r, DB: Database> Decode<'r, DB> for ScopeSet
where
    &'r str: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(ScopeSet::from_stored(<&str as Decode<DB>>::decode(value)?))
    }
}

impl<DB: Database> Type<DB> for pkce::Method
where
    str: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <str as Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <str as Type<DB>>::compatible(ty)
    }
}

impl<'r, DB: Database> Decode<'r, DB> for pkce::Method
where
    &'r str: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<DB>>::decode(value)?;
        pkce::Method::parse(text)
            .ok_or_else(|| format!("unknown stored PKCE method {text:?}").into())
    }
}
