/**
 * OpenJPEG compiled to WebAssembly (@cornerstonejs/codec-openjpeg, decoder-only build): decodes
 * one codestream, optionally at a reduced resolution level. Each {@link OpenJpeg} is its own
 * WebAssembly instance, whose memory grows to the largest decode it has done and is given back
 * only when the instance is dropped; a raster holds one while it is open.
 */
import { createRequire } from 'node:module';

interface FrameInfo {
  readonly width: number;
  readonly height: number;
  readonly bitsPerSample: number;
  readonly componentCount: number;
  readonly isSigned: boolean;
}

interface J2KDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decode(): void;
  decodeSubResolution(level: number, layer: number): void;
  getFrameInfo(): FrameInfo;
  calculateSizeAtDecompositionLevel(level: number): { width: number; height: number };
  delete(): void;
}

interface OpenJpegModule {
  J2KDecoder: new () => J2KDecoder;
}

type Factory = (options: {
  print: (s: string) => void;
  printErr: (s: string) => void;
}) => Promise<OpenJpegModule>;

const require = createRequire(import.meta.url);

/** What one decode gave: pixel-interleaved samples (16-bit ones little-endian in 2 bytes). */
export interface DecodedImage {
  readonly width: number;
  readonly height: number;
  readonly components: number;
  readonly bitsPerSample: number;
  readonly signed: boolean;
  /** A copy, owned by the caller. */
  readonly data: Uint8Array;
}

/** One WebAssembly OpenJPEG decoder instance. */
export class OpenJpeg {
  private constructor(
    private readonly module: OpenJpegModule,
    private readonly messages: string[],
  ) {}

  /** Instantiates the WebAssembly module (about 20 ms). */
  static async create(): Promise<OpenJpeg> {
    const factory = require('@cornerstonejs/codec-openjpeg/decodewasmjs') as Factory;
    const messages: string[] = [];
    const keep = (s: string): void => {
      // OpenJPEG reports progress and errors through these: keep the last few for error messages
      if (/^\[INFO\]/.test(s) || !s.trim()) return;
      messages.push(s.trim());
      if (messages.length > 4) messages.shift();
    };
    const module = await factory({ print: keep, printErr: keep });
    return new OpenJpeg(module, messages);
  }

  /**
   * Decodes a whole codestream at `reduce` (0 full resolution, r: 1/2^r); undefined when
   * OpenJPEG produced nothing, with its last messages in {@link lastMessages}.
   */
  decode(codestream: Uint8Array, reduce = 0): DecodedImage | undefined {
    this.messages.length = 0;
    const decoder = new this.module.J2KDecoder();
    try {
      decoder.getEncodedBuffer(codestream.length).set(codestream);
      if (reduce > 0) decoder.decodeSubResolution(reduce, 0);
      else decoder.decode();
      // the frame info keeps the full size; the decoded buffer is of the reduced one
      const frame = decoder.getFrameInfo();
      const size = reduce > 0 ? decoder.calculateSizeAtDecompositionLevel(reduce) : frame;
      const decoded = decoder.getDecodedBuffer();
      const expected = size.width * size.height * frame.componentCount * (frame.bitsPerSample > 8 ? 2 : 1);
      if (size.width === 0 || size.height === 0 || decoded.length === 0) return undefined;
      if (decoded.length !== expected) {
        this.messages.push(
          `decoded ${decoded.length} bytes for ${size.width} x ${size.height} x ${frame.componentCount}`,
        );
        return undefined;
      }
      return {
        width: size.width,
        height: size.height,
        components: frame.componentCount,
        bitsPerSample: frame.bitsPerSample,
        signed: frame.isSigned,
        data: new Uint8Array(decoded),
      };
    } finally {
      decoder.delete();
    }
  }

  /** OpenJPEG's last warnings and errors, joined. */
  get lastMessages(): string {
    return this.messages.join('; ');
  }
}
