export * from './errors.js';
export * from './instance-types.js';
export * from './schema.js';
export * from './environments.js';
export * from './descriptor.js';
