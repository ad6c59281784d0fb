/** kill -9 of a gateway in the middle of a stream, with Redis counters (PostgreSQL store): see the suite. */
import { describeMidStreamCrash } from './support/mid-stream-crash';

describeMidStreamCrash('redis');
