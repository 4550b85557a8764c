// opossum ships no type declarations; this declares the part Ballast uses.
declare module 'opossum' {
  const CircuitBreaker: import('./opossum-types.ts').OpossumConstructor;
  export default CircuitBreaker;
}
