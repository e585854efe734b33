//! The presets, one file each, in the order detection tries them: frameworks built on another
//! (Next.js, SvelteKit, Astro… on Vite or React) come before it, and the catch-alls (plain
//! Node.js, then a static site) last. The first that recognises the app plans its build.

mod angular;
mod astro;
mod create_react_app;
mod docusaurus;
mod eleventy;
mod gatsby;
mod hexo;
mod mkdocs;
mod nextjs;
mod node;
mod nuxt;
mod react_router;
mod sphinx;
mod static_site;
mod sveltekit;
mod vite;
mod vitepress;

use super::preset::Preset;

pub const PRESETS: [&Preset; 17] = [
    &nextjs::PRESET,
    &nuxt::PRESET,
    &sveltekit::PRESET,
    &astro::PRESET,
    &react_router::PRESET,
    &gatsby::PRESET,
    &docusaurus::PRESET,
    &vitepress::PRESET,
    &angular::PRESET,
    &eleventy::PRESET,
    &hexo::PRESET,
    &create_react_app::PRESET,
    &vite::PRESET,
    &mkdocs::PRESET,
    &sphinx::PRESET,
    &node::PRESET,
    &static_site::PRESET,
];

/// What `"framework": "none"` leaves: plain Node.js, or a static site.
pub const PLAIN: [&Preset; 2] = [&node::PRESET, &static_site::PRESET];
