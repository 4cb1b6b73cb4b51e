//! Statuses and outcomes as the database stores them: their names as text,
//! read back strictly (an unknown name is an error, never a default).

use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Text;
use std::io::Write;

use crate::run::{CaseOutcome, RunStatus};

macro_rules! text_enum {
    ($($ty:ty),*) => {$(
        impl ToSql<Text, Pg> for $ty {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                out.write_all(self.as_str().as_bytes())?;
                Ok(IsNull::No)
            }
        }

        impl FromSql<Text, Pg> for $ty {
            fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
                let name = std::str::from_utf8(bytes.as_bytes())?;
                Ok(name.parse::<$ty>()?)
            }
        }
    )*};
}

text_enum!(RunStatus, CaseOutcome);
