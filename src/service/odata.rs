//! OData filter. STUB.
#[derive(Debug, Clone)]
pub struct Filter;
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at position {position})")]
pub struct FilterError { pub position: usize, pub message: String }
pub trait FilterTarget {
    fn connection_id(&self) -> &str;
    fn user_id(&self) -> Option<&str>;
    fn in_group(&self, group: &str) -> bool;
    fn groups(&self) -> Vec<&str>;
}
impl Filter {
    pub fn parse(_s: &str) -> Result<Filter, FilterError> { unimplemented!() }
    pub fn matches(&self, _t: &dyn FilterTarget) -> bool { unimplemented!() }
}
