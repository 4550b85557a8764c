// opossum ships no type declarations. The directive below, rather than an ambient
// module declaration, lets every program that compiles these sources (through the
// `@ballast/source` condition) type-check without extra configuration.
// biome-ignore lint/suspicious/noTsIgnore: an untyped module must import cleanly with or without @types/opossum installed
// @ts-ignore TS7016: untyped module, described by OpossumConstructor
import OpossumModule from 'opossum';
import type { OpossumConstructor } from './opossum-types.ts';

/** opossum's CircuitBreaker class, typed with the surface Ballast relies on. */
export const Opossum: OpossumConstructor = OpossumModule as OpossumConstructor;
