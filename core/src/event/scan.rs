//! A validating scanner over the top level of a JSON object.
