/**
 * Fixtures for tests of usage metering (`@ballast/app-usage/testing`): this app's own tests
 * and the system tests. Not part of the app's API.
 */
export { openDuck } from '../duck.ts';
export { finishedJob } from './fixtures.ts';
export { type UsageFixture, useUsageFixture } from './usage-fixture.ts';
