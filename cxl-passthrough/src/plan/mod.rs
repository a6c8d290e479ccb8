//! Pure planning: where the device memory goes in guest physical address space
//! ([`window`]) and how the component BAR is split into directly mapped areas and the
//! trapped overlay ([`bar`]).

pub mod bar;
pub mod topology;
pub mod window;

pub use bar::{BarPlan, BarPlanError, MappedArea, plan_bar};
pub use window::{CFMWS_ALIGN, Window, WindowAllocator, WindowError};
