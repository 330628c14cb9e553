//! Huoban's behaviour suite: every test runs against a real server on a loopback port,
//! once on SQLite and once on PostgreSQL, each on a fresh database.

mod helpers;

mod accounts;
mod alerts;
mod audit;
mod authorization;
mod badges;
mod campaigns;
mod checkin;
mod cli;
mod conventions;
mod crash;
mod demo;
mod events;
mod goals;
mod hardening;
mod identity;
mod idp;
mod inbox;
mod invites;
mod personal;
mod questionnaire;
mod rewards;
mod risk;
mod rules;
mod social;
mod staff;
mod stepup;
mod tasks;
mod teams;
