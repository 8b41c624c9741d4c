// Command-line options of the test server (the usage line is in server.js).
'use strict';

function parseArgs(argv) {
  const opts = {
    port: 8103,
    host: '127.0.0.1',
    load: [],
    delayMs: 0,
    defaultCount: 20,
    maxCount: 1000,
    lenientSearch: false,
    validate: true,
    publicBase: undefined,
    exitWithStdin: false,
  };
  const intArg = (name, value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) {
      throw new Error(`${name} needs a non-negative integer, got ${JSON.stringify(value)}`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const [flag, inline] = eq >= 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
    const next = () => {
      if (inline !== undefined) {
        return inline;
      }
      if (i + 1 >= argv.length) {
        throw new Error(`${flag} needs a value`);
      }
      return argv[++i];
    };
    switch (flag) {
      case '--port':
        opts.port = intArg(flag, next());
        break;
      case '--host':
        opts.host = next();
        break;
      case '--load':
        opts.load.push(next());
        break;
      case '--delay-ms':
        opts.delayMs = intArg(flag, next());
        break;
      case '--default-count':
        opts.defaultCount = intArg(flag, next());
        break;
      case '--max-count':
        opts.maxCount = intArg(flag, next());
        break;
      case '--public-base':
        opts.publicBase = next().replace(/\/+$/, '');
        break;
      case '--lenient-search':
        opts.lenientSearch = true;
        break;
      case '--no-validate':
        opts.validate = false;
        break;
      case '--exit-with-stdin':
        opts.exitWithStdin = true;
        break;
      case '-h':
      case '--help':
        process.stdout.write(
          'usage: node server.js [--port N] [--host H] [--load FILE ...] [--delay-ms N] [--default-count N]\n' +
            '                      [--max-count N] [--lenient-search] [--no-validate] [--public-base URL]\n' +
            '                      [--exit-with-stdin]\n'
        );
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument: ${arg}`);
    }
  }
  return opts;
}

module.exports = { parseArgs };
