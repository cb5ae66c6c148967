import { readFileSync } from 'node:fs';

/**
 * The stand-in's SDL is Tray's published schema, vendored in shared/tray/tray-schema.graphql
 * (provenance in its header): the stand-in has no type, field or argument of its own, so a
 * document that passes here passes Tray's validation too, and one Tray rejects fails here.
 *
 * `Json` is Tray's JSON-*encoded string* scalar. buildSchema gives custom scalars identity
 * coercion, so the resolvers check that a Json argument really is a string and parses
 * (that is where Tray's rule "data: JSON.stringify({...})" bites clients).
 */
export const TRAY_SCHEMA_PATH = new URL('../../shared/tray/tray-schema.graphql', import.meta.url);

export const traySchemaSdl: string = readFileSync(TRAY_SCHEMA_PATH, 'utf8');
